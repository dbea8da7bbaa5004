"""rsbridge: connects a BeyondTrust Remote Support appliance to ticketing systems."""

__version__ = "0.1.0.dev0"
