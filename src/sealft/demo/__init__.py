"""The offline demo: a seeded safety world (`world`), a tiny model built from a config
(`tiny`), and the whole pipeline run on them (`demo`)."""
