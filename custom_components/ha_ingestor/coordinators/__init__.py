"""The entry's coordinators, one per schedule: statistics, delivery check, storage figures.

Each imports the options, the clients, the issues and `api/`, never another coordinator and
never the runtime data (which is built from them); what one needs of another is handed to it.
"""
