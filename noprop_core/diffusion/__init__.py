"""The variational diffusion maths of NoProp: noise schedules, Gaussian identities, the
objectives (DT, CT, FM) and the inference samplers. Depends on torch only."""
