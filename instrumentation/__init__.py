"""streamtriage.instrumentation"""
