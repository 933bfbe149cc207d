"""What ships to the phone: thresholds tuned on the INT8 model, the five outputs with
inference_config.json, and the predictor that follows them."""
