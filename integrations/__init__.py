"""The outside world (YouTube, Instagram, ...), behind one protocol."""
