"""The shared vocabulary: models, ids, typed outcomes and events, and the text conversion more
than one side needs.  The bottom layer: it imports nothing of `bridge`, `connectors` or
`storage`, and everything above may import it."""
