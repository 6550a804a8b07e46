"""Small shared helpers: hashed seeds, atomic writes, provenance records."""
