"""From a trained Keras model to the INT8 model: the conversion under the deployment contract
(QAT and PTQ models alike), and running the INT8 model as the phone does."""
