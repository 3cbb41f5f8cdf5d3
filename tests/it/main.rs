mod placeholder {}
mod store;
