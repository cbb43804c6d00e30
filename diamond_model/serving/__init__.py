"""What a running server needs beside the model: client keys and their scopes, metering and
limits, the quote records clients read back, and the dashboard's access check.
"""
