"""The learning loop: training, hold-out evaluation and metrics, the upload preview, the model
registry (versions, champion, the gate's evidence) and the loop that stores a batch, retrains and
promotes only what is measurably better.
"""
