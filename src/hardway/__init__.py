"""hardway-lab: Kubernetes pod networking, the hard way."""

__version__ = "0.1.0"
