/**
 * The layering rule, checked (test/unit/architecture.test.ts runs this):
 *   cli, daemon -> api -> core -> (ports) <- drivers, network, images, state, volumes
 * Adapters implement core's ports and may import only its contract (ports, models,
 * errors); core never imports an adapter; api never imports one either.
 */
const ADAPTERS = '^src/(drivers|network|images|state|volumes|gateway)/';
module.exports = {
  forbidden: [
    {
      name: 'core-imports-no-adapter-or-upper-layer',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(drivers|network|images|state|volumes|gateway|api|cli|client|daemon)/' },
    },
    {
      name: 'api-imports-no-adapter',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/(drivers|network|images|state|volumes|gateway|cli|client|daemon)/' },
    },
    {
      name: 'api-uses-the-application-layer-not-its-insides',
      comment: 'routes call commands, snapshots and queries; steps, plans, the supervisor and guest files stay behind them',
      severity: 'error',
      from: { path: '^src/api/' },
      to: { path: '^src/(core/(steps|plans|supervision)/|guest/)' },
    },
    {
      name: 'core-layers-point-down',
      comment: 'supervision, plans and steps never reach up to the commands, snapshots or reconcile that use them',
      severity: 'error',
      from: { path: '^src/core/(supervision|plans|steps)/' },
      to: { path: '^src/core/(commands|snapshots|reconcile|queries)/|^src/core/core\\.ts$' },
    },
    {
      name: 'adapters-import-only-the-core-contract',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: '^src/core/', pathNot: '^src/core/(ports|models|errors)\\.ts$' },
    },
    {
      name: 'adapters-import-no-upper-layer',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: '^src/(api|cli|client|daemon)/' },
    },
    {
      name: 'no-adapter-to-other-adapter',
      severity: 'error',
      from: { path: ADAPTERS },
      to: { path: '^src/(drivers|network|images|state|volumes|gateway)/', pathNot: '^src/$1/' },
    },
    {
      name: 'leaves-stay-leaves',
      comment: 'util and guest are used by all; they use nothing above them (guest may name core model types)',
      severity: 'error',
      from: { path: '^src/(util|guest)/' },
      to: { path: '^src/(api|cli|client|daemon|drivers|network|images|state|volumes|gateway)/' },
    },
    {
      name: 'client-uses-only-api-types',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/', pathNot: '^src/(client|api/schemas|core/errors)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.main.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
