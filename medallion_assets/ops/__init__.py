"""Operations on the warehouse: the quality log every step appends to, and rollback of a run."""
