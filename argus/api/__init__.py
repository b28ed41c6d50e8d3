"""HTTP blueprints: request parsing and responses only. The work lives elsewhere."""
