"""Body measurements: uploads, the worker's claim and result, the body profile, housekeeping."""
