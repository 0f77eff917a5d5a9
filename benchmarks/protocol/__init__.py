"""The harmful fine-tuning protocol (issue 29): an aligned model fine-tuned on task rows of
which a share p is harmful, measured for safety and task accuracy."""
