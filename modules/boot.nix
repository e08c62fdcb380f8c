# bifrost.boot.*: the rEFInd backend wired through boot.loader.external.
# (Filled in by the rEFInd issue.)
{...}: {}
