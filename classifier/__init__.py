"""streamtriage.classifier"""
