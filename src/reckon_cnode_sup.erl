%%% @doc Top supervisor of the `reckon_cnode' application.
%%%
%%% Children, in start order:
%%% <ol>
%%% <li>`pg_scope': the local OTP `pg' scope of the emitter groups
%%%   (application env `scope', default `reckon_db_pg'). It is started
%%%   here only if no process is registered under that name yet; an
%%%   existing scope (e.g. one started by reckon-db itself) is left alone
%%%   and this child stays `ignore'd. Local BEAM pids join their groups
%%%   through this scope, and the C node peers with it.</li>
%%% <li>`relay': the fan-out relay {@link reckon_cnode_relay}, unless
%%%   the application env `relay' is `false'. The supervisor owns the
%%%   relay's table of handled counts, which must outlive the relay.</li>
%%% <li>the {@link reckon_cnode} shim's one process, the connection
%%%   watcher {@link reckon_cnode_conn} (registered as `reckon_cnode';
%%%   in spawn mode it also owns the C node's port), unless the
%%%   application env `mode' is `relay' (a node that only hosts
%%%   subscribers: scope and relay only, no C node attached).</li>
%%% </ol>
%%% @end
-module(reckon_cnode_sup).
-behaviour(supervisor).

-export([start_link/0, start_scope/1]).
-export([init/1]).

%% @doc Starts the supervisor, registered as `reckon_cnode_sup'.
-spec start_link() -> {ok, pid()} | ignore | {error, term()}.
start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

%% @doc Starts the `pg' scope `Scope', linked to the caller, unless a
%% process is already registered under that name: then returns `ignore'
%% and leaves that process alone. Also `ignore' for a non-atom scope (the
%% {@link reckon_cnode} shim reports it as `{bad_env, scope, Scope}').
-spec start_scope(term()) -> {ok, pid()} | ignore | {error, term()}.
start_scope(Scope) when is_atom(Scope) ->
    case whereis(Scope) of
        undefined ->
            case pg:start_link(Scope) of
                {ok, Pid} -> {ok, Pid};
                %% started by someone else between whereis/1 and here
                {error, {already_started, _}} -> ignore;
                {error, Reason} -> {error, Reason}
            end;
        _Existing ->
            ignore
    end;
start_scope(_Scope) ->
    ignore.

%% @private
-spec init([]) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init([]) ->
    %% The relay's handled counts live here so that they outlive the relay:
    %% C nodes read them once it died.
    ok = reckon_cnode_relay:new_table(),
    SupFlags = #{strategy => one_for_one, intensity => 5, period => 10},
    Scope = application:get_env(reckon_cnode, scope, reckon_db_pg),
    PgScope = #{id => pg_scope,
                start => {?MODULE, start_scope, [Scope]},
                restart => permanent,
                shutdown => 5000,
                type => worker,
                modules => [pg]},
    Relay = #{id => relay,
              start => {reckon_cnode_relay, start_link, [Scope]},
              restart => permanent,
              shutdown => 5000,
              type => worker,
              modules => [reckon_cnode_relay]},
    Shim = #{id => reckon_cnode,
             start => {reckon_cnode, start_link, []},
             restart => permanent,
             %% terminate/2 may wait ~2 s for a spawned C node to exit
             shutdown => 5000,
             type => worker,
             modules => [reckon_cnode_conn]},
    WithRelay = application:get_env(reckon_cnode, relay, true) =/= false
        andalso is_atom(Scope),
    RelayOnly = application:get_env(reckon_cnode, mode, attached) =:= relay,
    {ok, {SupFlags, [PgScope] ++ [Relay || WithRelay] ++ [Shim || not RelayOnly]}}.
