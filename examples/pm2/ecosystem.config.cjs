// pm2 start examples/pm2/ecosystem.config.cjs
// Fork mode: each instance is a process of its own with its own port (BASE_PORT + instance).
// (PM2's cluster mode shares one port between instances through PM2's own primary, which is
// not ours; run node:cluster yourself with startClusterNode for that, see ../node-cluster.)
const instances = Number(process.env.INSTANCES ?? 3);

module.exports = {
  apps: [
    {
      name: 'expirable-store-example',
      script: 'app.ts',
      cwd: __dirname,
      interpreter: 'node',
      interpreter_args: '--import tsx',
      exec_mode: 'fork',
      instances,
      // NODE_APP_INSTANCE is 0..instances-1 for each instance.
      instance_var: 'NODE_APP_INSTANCE',
      autorestart: true,
      env: {
        INSTANCES: String(instances),
        BASE_PORT: process.env.BASE_PORT ?? '4370',
        // In production, take it from your secret store.
        EXPIRABLE_STORE_COOKIE: process.env.EXPIRABLE_STORE_COOKIE ?? 'change-me',
        STATUS_DIR: process.env.STATUS_DIR ?? '',
      },
    },
  ],
};
