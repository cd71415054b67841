"""The add-on's download, for customers holding a valid license."""
