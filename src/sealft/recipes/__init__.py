"""Recipes: one per command, each reading top to bottom from its config (`seal select`,
`seal finetune`, `seal eval`, `seal run`)."""
