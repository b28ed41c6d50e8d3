"""HTTP blueprints: request parsing and answers only; the work lives elsewhere."""
