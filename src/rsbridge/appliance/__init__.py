"""Everything that talks to, or reads from, the Remote Support appliance."""
