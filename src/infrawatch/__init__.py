"""InfraWatch: a self-hosted control plane for server fleets."""

__version__ = "0.1.0"
