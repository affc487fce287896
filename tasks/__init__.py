"""Background work: the taskiq broker, its middlewares, and one module of tasks per domain."""
