"""Speech data: manifests, real-data splits, TTS clips, augmentation."""
