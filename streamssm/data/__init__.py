"""Speech data: manifests and corpus readers, text, TTS synthesis, augmentation, batches, feature cache (README.md)."""
