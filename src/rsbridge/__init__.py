"""rsbridge: connects a BeyondTrust Remote Support appliance to ticketing systems."""

from rsbridge import logs as _logs

__version__ = "0.1.0.dev0"

# Before any HTTP client or server runs: URLs in third-party logs lose their credentials.
_logs.install()
