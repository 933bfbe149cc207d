"""The dataset from its files to tf.data batches: parsing and validation, statistics, decoding
and letterbox, sharded records, and the augmented input pipeline with its views."""
