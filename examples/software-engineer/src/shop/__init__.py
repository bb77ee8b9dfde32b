"""A small shop backend: carts, prices in cents, checkout totals."""
