"""The app package; see README.md."""
