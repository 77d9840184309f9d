"""Several roomcast nodes as one service: PostgreSQL holds durable state (tasks, sessions, node
leases), Redis holds what must be shared and fast: the node directory, room placement, calls
between nodes and shared throttling. Without ``redis_url`` none of this runs and the local
implementations (one node) are used.
"""
