"""streamtriage.collector"""
