"""streamtriage: finds out why LLM streaming calls fail."""
__version__ = "0.1.0"
