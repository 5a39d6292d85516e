"""Fine-tuning: the LoRA training loop, the SFT corpus, and sweeps of training runs."""
