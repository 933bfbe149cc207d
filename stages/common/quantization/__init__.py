"""From the float student to the INT8 model: QAT, PTQ, the INT8 export contract and running the
INT8 model as the phone does."""
