"""Quality of generated images (Table 5): FID, KID and LPIPS with offline feature fallbacks."""
