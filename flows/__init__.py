"""Prefect orchestration of the aslfs pipeline. Flows only wire library functions and DVC; they compute nothing."""
