"""Helpers shared by the test suite: real local servers and realistic messages."""
