"""Search agents on the NATS-Bench environments.

Submodules are imported on demand so that a light agent never pays for torch: ``agents.sb3``
(stable-baselines3 PPO / A2C / MaskablePPO) imports torch, ``agents.base`` does not.
"""
