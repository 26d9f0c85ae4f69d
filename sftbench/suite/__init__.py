"""Suite files: schema, catalog of names, loading, case expansion, discovery."""
