# Fake CircuitPython `board`.
LED = "LED"
