"""streamtriage.simulator"""
