"""Adapters to AWS services and to this machine."""
