"""Named-entity recognition for geological texts (17 entity types)."""
