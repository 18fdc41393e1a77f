"""The web application: review desk, audit views, JSON API."""
