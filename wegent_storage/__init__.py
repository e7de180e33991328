"""wegent_storage: the SQL resource and task store and the knowledge backends (arriving with issues 3 and 7).

Depends on wegent_core only, and registers its features through the `wegent` entry-point group.
"""
