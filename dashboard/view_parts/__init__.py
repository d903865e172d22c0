"""Pieces several views share, one concept a module, below the views: a view imports these and
never another view, so ``dashboard/views/`` is one floor of siblings."""
