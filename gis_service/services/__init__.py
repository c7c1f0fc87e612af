"""Domain services: each takes a database connection (never a Request)."""
