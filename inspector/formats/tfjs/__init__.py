"""TF.js: `model.json` (layers or graph model) plus weight shards, and bare weight manifests."""
