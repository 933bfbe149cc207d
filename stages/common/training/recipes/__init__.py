"""What each training stage trains: a Recipe the driver runs (training/driver.py)."""
