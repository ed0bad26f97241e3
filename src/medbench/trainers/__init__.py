"""SDK for trainer plugins: medbench.trainers.hf for Hugging Face / TRL-based trainers."""
